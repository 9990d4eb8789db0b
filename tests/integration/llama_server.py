"""`python -m llama_cpp.server` (the stand-in cloud LLM), with llama.cpp's AMX weight buffers turned off
on CPUs that have AMX, where they crash batched decoding (see hybridlm.models.llama_runtime)."""

from __future__ import annotations

import contextlib

from llama_cpp.server.__main__ import main

from hybridlm.models.llama_runtime import cpu_has_amx, without_extra_buffers

if __name__ == "__main__":
    with without_extra_buffers() if cpu_has_amx() else contextlib.nullcontext():
        main()
