"""`import assistant` and `duty --help` must not pull in torch (it is an optional extra)."""

import subprocess
import sys


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
                         capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_import_assistant_does_not_import_torch():
    modules = _modules_after("import assistant, assistant.pipeline, assistant.cli")
    assert "assistant.pipeline" in modules
    assert "torch" not in modules
    assert "sentence_transformers" not in modules


def test_duty_help_does_not_import_torch():
    code = (
        "import sys\nsys.argv = ['duty', '--help']\nfrom assistant.cli import app\n"
        "try:\n    app()\nexcept SystemExit:\n    pass"
    )
    modules = _modules_after(code)
    assert "typer" in modules
    assert "torch" not in modules
    assert "chromadb" not in modules
