"""The custom-resource handlers (``custom_resources.<module>.on_event``) and their plumbing."""
