"""Local mode: the reference stack in a local AWS emulator, with real training and serving.

Training jobs run on this machine through :mod:`.training_runner` (the SageMaker training
container's contract: ``/opt/ml`` tree, ``SM_*`` environment, ``model.tar.gz`` in S3) and endpoints
are served by :mod:`.model_server` (the inference container's ``/ping`` and ``/invocations``).

This package imports nothing heavy on purpose: ``import cdk_sagemaker_rl.local`` must stay cheap
(no torch, no boto3), because the model server subprocess and the CLI start through it. Import the
submodules for their APIs.
"""
