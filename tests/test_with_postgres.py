"""scripts/with-postgres.sh from a clone in a private directory (mode 700, as a clone under
root's home): the throwaway cluster lives in a fresh directory under the system temp dir that
the database user owns, nothing is written into the clone, and it is gone once the command exits.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "with-postgres.sh"

pytestmark = pytest.mark.skipif(
    not glob.glob("/usr/lib/postgresql/*/bin/initdb"),
    reason="no PostgreSQL server binaries under /usr/lib/postgresql (make postgres-deps)",
)

PROBE = """
import os, psycopg
with psycopg.connect(host=os.environ["DDTPP_POSTGRES_HOST"], port=os.environ["DDTPP_POSTGRES_PORT"],
                     user=os.environ["DDTPP_POSTGRES_USER"], dbname="postgres") as conn:
    print("answer", conn.execute("select 41 + 1").fetchone()[0])
"""


def _clone(tmp_path: Path) -> tuple[Path, Path]:
    private = tmp_path / "home"
    clone = private / "clone"
    (clone / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, clone / "scripts")
    private.chmod(0o700)
    return private, clone


def _run(clone: Path, **env: str) -> subprocess.CompletedProcess:
    # Under `make test-postgres` the outer server's settings are in the environment: a nested
    # run must pick its own port.
    environ = {k: v for k, v in os.environ.items() if not k.startswith("DDTPP_POSTGRES_")}
    return subprocess.run(
        [str(clone / "scripts" / "with-postgres.sh"), sys.executable, "-c", PROBE],
        cwd=clone, env={**environ, **env}, capture_output=True, text=True, timeout=180,
    )


def test_a_clone_in_a_private_directory_gets_a_server(tmp_path):
    private, clone = _clone(tmp_path)
    result = _run(clone)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "answer 42" in result.stdout
    data = Path(re.search(r"\(data: (.+)\)", result.stdout).group(1))
    assert not data.is_relative_to(private)
    assert not data.parent.exists(), "the cluster's directory is removed at exit"
    assert sorted(p.name for p in clone.iterdir()) == ["scripts"], "nothing written into the clone"


@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the cluster to another user")
def test_a_temp_dir_the_database_user_cannot_reach_is_an_error(tmp_path):
    private, clone = _clone(tmp_path)
    unreachable = private / "tmp"
    unreachable.mkdir()
    result = _run(clone, TMPDIR=str(unreachable))
    assert result.returncode == 1
    assert "cannot reach" in result.stderr and "TMPDIR" in result.stderr
    assert list(unreachable.iterdir()) == []
