"""The predict function (``predict.index.handler``)."""
