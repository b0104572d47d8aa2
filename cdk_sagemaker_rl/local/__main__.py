"""``python -m cdk_sagemaker_rl.local deploy|predict|play|demo|destroy|status``."""

import sys

from .cli import main

sys.exit(main())
