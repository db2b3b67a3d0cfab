import sys

from ..cli import synth_main

sys.exit(synth_main())
