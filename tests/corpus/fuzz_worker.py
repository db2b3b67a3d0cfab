"""Child process of the fuzz run: reads one path per line, loads it, answers one JSON line.

Runs apart from pytest so that a hang can be killed and a memory blow-up measured (peak RSS
growth per input) and capped (RLIMIT_AS) without taking the test process down.
"""

import json
import resource
import sys


def main():
    from octviewer import VolumeReadError, load_volume

    limit_gib = float(sys.argv[1]) if len(sys.argv) > 1 else 6.0
    with open("/proc/self/statm") as f:
        mapped = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (mapped + int(limit_gib * 2**30), resource.RLIM_INFINITY))
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        path = line.rstrip("\n")
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        try:
            volume = load_volume(path)
            outcome, detail = "ok", str(volume.shape)
        except VolumeReadError as exc:
            outcome, detail = "refused", str(exc)
        except BaseException as exc:  # noqa: BLE001 - what the fuzz run looks for
            outcome, detail = "foreign", f"{type(exc).__name__}: {exc}"[:500]
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
        print(json.dumps({"path": path, "outcome": outcome, "detail": detail, "rss_growth": grown}), flush=True)


if __name__ == "__main__":
    main()
