import sys

from .cli import viewer_main

sys.exit(viewer_main())
