"""Bounded threads: a cap set before torch is imported holds after the import (and setting it
does not import torch), and one set after the import caps the pool torch already made.
Fresh processes: the cap is process state."""

import subprocess
import sys

import pytest


@pytest.mark.parametrize("torch_first", [False, True])
def test_the_cap_holds_whether_torch_is_imported_before_or_after(torch_first):
    code = "\n".join(
        [
            "import os, sys",
            "for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'): os.environ.pop(var, None)",
            "import torch" if torch_first else "",
            "from houseprices.util.threads import limit_threads",
            "limit_threads(1)",
            "print('torch' in sys.modules)",
            "import torch",
            "print(torch.get_num_threads())",
        ]
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [str(torch_first), "1"]
