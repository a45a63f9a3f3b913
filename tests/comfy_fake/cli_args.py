"""Fake of `comfy.cli_args`: only the fields an extension reads (COMFYUI.md §2.2)."""
import argparse

args = argparse.Namespace(listen="127.0.0.1", port=8188, enable_cors_header=None,
                          tls_keyfile=None, tls_certfile=None)
