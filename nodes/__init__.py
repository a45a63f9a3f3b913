"""The ComfyUI side of Hikaze Model Manager: host adapter, nodes, sidecar supervisor."""
