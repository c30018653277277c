"""The competition files: column schema, checksums, CSV validation, download."""
