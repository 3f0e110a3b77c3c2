"""Where a model comes from: a local directory or a Hub id, found with one quick probe instead of retries.

transformers retries an unreachable Hub for about a minute per file before failing with a generic message.
One HEAD request for config.json (no retries) tells the cases apart first: reachable, gated, unknown id,
unknown revision, or no network (then a cached snapshot is used if there is one). Each failure becomes one
line saying what to do.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from tn.infra.errors import ModelError

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 10.0
_OFFLINE_HINT = ("pre-download it where there is network (`huggingface-cli download {id}`) and set "
                 "HF_HUB_OFFLINE=1, or use a local copy: model=hf model.name_or_path=<directory>")


def looks_local(path: str) -> bool:
    """A filesystem path rather than a Hub id ("org/name" has at most one slash and no leading . / ~)."""
    return (Path(path).expanduser().exists() or os.path.isabs(path) or path.startswith((".", "~"))
            or path.count("/") > 1 or "\\" in path)


def offline() -> bool:
    """HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set: nothing may be fetched."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes", "on") for v in ("HF_HUB_OFFLINE",
                                                                                    "TRANSFORMERS_OFFLINE"))


def locate(path: str, revision: str | None) -> bool:
    """Check that `path` can be loaded; return whether to load from local files only. Raises ModelError."""
    if looks_local(path):
        directory = Path(path).expanduser()
        if not directory.is_dir():
            raise ModelError(f"model.name_or_path={path}: no such directory")
        return True
    if offline():
        if not _cached(path, revision):
            raise ModelError(f"model.name_or_path={path}: not in the local Hub cache and HF_HUB_OFFLINE=1; "
                             + _OFFLINE_HINT.format(id=path))
        return True
    return _probe(path, revision)


def _probe(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    try:
        get_hf_file_metadata(hf_hub_url(repo_id, "config.json", revision=revision), timeout=PROBE_TIMEOUT_S)
        return False
    except GatedRepoError:
        raise ModelError(f"model.name_or_path={repo_id}: the model is gated on the Hub; accept its licence on "
                         f"https://huggingface.co/{repo_id}, then log in (`huggingface-cli login`) or set "
                         f"HF_TOKEN") from None
    except RevisionNotFoundError:
        raise ModelError(f"model.name_or_path={repo_id}: the Hub model has no revision "
                         f"model.revision={revision}") from None
    except RepositoryNotFoundError:
        raise ModelError(f"model.name_or_path={repo_id}: no such local directory, and no such model on the Hub "
                         f"(a private model needs `huggingface-cli login` or HF_TOKEN)") from None
    except EntryNotFoundError:
        raise ModelError(f"model.name_or_path={repo_id}: the Hub repository has no config.json "
                         f"(not a transformers model?)") from None
    except Exception as exc:  # noqa: BLE001  (any transport failure: no network, DNS, proxy, time-out)
        reason = f"{type(exc).__name__}: {exc}"
        if _cached(repo_id, revision):
            log.warning("the Hugging Face Hub is unreachable (%s); loading the cached snapshot of %s", reason, repo_id)
            return True
        raise ModelError(f"model.name_or_path={repo_id}: the Hugging Face Hub is unreachable ({reason}) and the "
                         f"model is not in the local cache; " + _OFFLINE_HINT.format(id=repo_id)) from None


def _cached(repo_id: str, revision: str | None) -> bool:
    from huggingface_hub import snapshot_download

    try:
        snapshot_download(repo_id, revision=revision, local_files_only=True)
        return True
    except Exception:  # noqa: BLE001  (not cached, or an incomplete snapshot: either way not loadable offline)
        return False
