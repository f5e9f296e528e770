"""Streaming an archive over HTTP(S) (or from a local file) to disk, with a progress bar and a completeness check."""

from __future__ import annotations

import http.client
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

import sr_bench
from sr_bench.errors import UserError

CHUNK = 1 << 20


def as_url(source: str) -> str:
    """A URL as given, or a ``file://`` URL for an existing local path (so ``--url`` accepts a downloaded archive)."""
    if "://" not in source and Path(source).expanduser().is_file():
        return Path(source).expanduser().resolve().as_uri()
    return source


def download(url: str, dest: Path, progress: bool = True, timeout: float = 60.0) -> int:
    """Write the body at ``url`` to ``dest``; returns the byte count. A short body (fewer bytes than Content-Length,
    which urllib does not flag by itself) or any network error is a UserError."""
    request = urllib.request.Request(url, headers={"User-Agent": f"sr_bench/{sr_bench.__version__}"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        raise UserError(f"download of {url} failed: HTTP {e.code} {e.reason}; check the URL or pass --url") from None
    except urllib.error.URLError as e:
        raise UserError(f"cannot reach {url} ({e.reason}); check the network or pass --url / SRBENCH_MIRROR") from None
    except (ValueError, OSError, http.client.HTTPException) as e:
        raise UserError(f"cannot download {url} ({e}); check the URL") from None
    received = 0
    with response:
        length_header = response.headers.get("Content-Length")
        expected = int(length_header) if length_header and length_header.isdigit() else None
        bar = tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024, desc=dest.name, file=sys.stderr,
                   disable=not progress or None, leave=False)
        try:
            with open(dest, "wb") as out, bar:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as e:
            raise UserError(f"download of {url} was interrupted after {received} bytes ({e}); try again") from None
    if expected is not None and received != expected:
        raise UserError(f"download of {url} is truncated: got {received} of {expected} bytes; try again")
    if received == 0:
        raise UserError(f"download of {url} is empty; check the URL")
    return received
