"""Install what ComfyUI lacks for this extension (run by ComfyUI-Manager, safe to run again)."""
import subprocess
import sys
from pathlib import Path

requirements = Path(__file__).resolve().parent / "requirements.txt"
subprocess.check_call([sys.executable, "-m", "pip", "install", "-r", str(requirements)])
