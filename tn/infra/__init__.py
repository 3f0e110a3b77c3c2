"""Infrastructure every stage uses: atomic writes, errors, process topology, launcher environment, override
handling, progress reporting and provenance. Nothing here knows about neurons."""
