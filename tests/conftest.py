"""Test settings: quick mode, no live plots, and a throwaway checkpoint folder per session.

`pytest` alone runs in quick mode; set GENAI_QUICK=0 to execute the notebooks at full size.
"""
import os
import tempfile

os.environ.setdefault("GENAI_QUICK", "1")
# OpenMP threads that sleep instead of spinning while they wait: the notebooks' kernels share
# the CPU with pytest's own process, and spinning threads made training up to 15x slower.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("GENAI_CHECKPOINTS", tempfile.mkdtemp(prefix="genai-checkpoints-"))
