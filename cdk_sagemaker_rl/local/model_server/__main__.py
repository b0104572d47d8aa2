"""``python -m cdk_sagemaker_rl.local.model_server``: the server process, as LocalModelServer
starts it (see :mod:`.server_process`)."""

from __future__ import annotations

import sys

from .server_process import main

sys.exit(main())
