"""SHA-256 sums of the input files against the committed ``SHA256SUMS`` listing."""

from __future__ import annotations

from pathlib import Path

from houseprices.errors import DataError
from houseprices.util.files import file_sha256


def read_checksums(checksums: Path) -> dict[str, str]:
    """Parse a ``sha256sum`` listing into {file name: hex digest}."""
    if not checksums.is_file():
        raise DataError(f"{checksums}: checksum list not found")
    sums = {}
    for lineno, line in enumerate(checksums.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name:
            raise DataError(f"{checksums}, line {lineno}: expected '<sha256>  <file name>'")
        sums[name.strip()] = digest
    return sums


def verify_checksums(checksums: Path, files: list[Path]) -> dict[str, str]:
    """Fail unless every file is present and unchanged; returns {path: digest}."""
    expected = read_checksums(checksums)
    problems, seen = [], {}
    for path in files:
        if path.name not in expected:
            problems.append(f"{path}: no checksum listed in {checksums}")
        elif not path.is_file():
            problems.append(
                f"{path}: file is missing (restore it with `git checkout -- {path}` or `houseprices download`)"
            )
        else:
            actual = file_sha256(path)
            seen[str(path)] = actual
            if actual != expected[path.name]:
                problems.append(
                    f"{path}: checksum mismatch: expected {expected[path.name]}, got {actual}; the file was altered"
                )
    if problems:
        raise DataError(
            f"input files failed verification against {checksums} (restore the files with "
            "`git checkout`; for your own variant of the data, list its SHA-256 sums in "
            f"{checksums} or set data.verify_checksums: false):\n  " + "\n  ".join(problems)
        )
    return seen
