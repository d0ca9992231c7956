"""Compile LaTeX with latexmk, non-interactively, and report failures briefly.

``run_latexmk`` always asks for pdfLaTeX (``-pdf``): Debian's latexmk otherwise defaults to
LuaLaTeX.  On failure it raises :class:`LatexError` whose message is the failing file, line,
TeX's message and a few lines of source around it, not the whole log.  After a success,
:func:`log_warnings` lists overfull boxes and undefined references for the builder to show.
"""

import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

INSTALL_HINT = (
    "{missing} not found. Install TeX with ./setup.sh (it runs apt-get for the Debian packages "
    "latexmk texlive-latex-base texlive-latex-recommended texlive-fonts-recommended texlive-latex-extra "
    "texlive-pictures texlive-science lmodern cm-super-minimal), or install them yourself "
    "with 'sudo apt-get install --no-install-recommends <packages>'."
)


FULL_DISK = 4 << 20  # bytes: with less free space than this, a failed compile is taken for a full disk


class LatexError(Exception):
    """LaTeX failed; the message is short and points at the source line."""


def require_tools() -> None:
    """Raise :class:`LatexError` unless latexmk and pdflatex are on the PATH."""
    missing = [tool for tool in ("latexmk", "pdflatex") if shutil.which(tool) is None]
    if missing:
        verb = "was" if len(missing) == 1 else "were"
        raise LatexError(INSTALL_HINT.format(missing=f"{' and '.join(missing)} {verb}"))


def run_latexmk(main_tex: Path, outdir: Path, templates: Path | None = None) -> Path:
    """Compile ``main_tex`` into ``outdir`` and return the PDF path; errors name the line of the
    template in ``templates`` the failing line was rendered from."""
    require_tools()
    outdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        "latexmk",
        "-pdf",
        "-interaction=nonstopmode",
        "-halt-on-error",
        "-file-line-error",
        f"-outdir={outdir}",
        main_tex.name,
    ]
    env = os.environ | {"max_print_line": "10000"}  # keep TeX from wrapping log lines at 79 characters
    # Its own process group, so an interrupt stops latexmk and every pdflatex it started.
    proc = subprocess.Popen(
        cmd,
        cwd=main_tex.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate()
    except BaseException:
        _stop_group(proc)
        raise
    log = outdir / main_tex.with_suffix(".log").name
    if proc.returncode != 0:
        if "No space left on device" in output or shutil.disk_usage(outdir).free < FULL_DISK:
            raise LatexError(
                f"No space left on device: {outdir} (LaTeX could not write its output; free some space and"
                " build again; the last good report.pdf is kept)"
            )
        text = log.read_text(errors="replace") if log.exists() else output
        raise LatexError(summarize_error(text, main_tex.parent, templates))
    return outdir / main_tex.with_suffix(".pdf").name


def _stop_group(proc: subprocess.Popen) -> None:
    """Terminate ``proc``'s process group, killing it if it does not stop within 5 s."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
            proc.wait(grace)
            return
        except ProcessLookupError:
            return
        except subprocess.TimeoutExpired:
            continue


def check_pdf(pdf: Path) -> None:
    """Raise :class:`LatexError` unless ``pdf`` is a complete PDF (header, xref and end marker)."""
    data = pdf.read_bytes() if pdf.is_file() else b""
    if not (data.startswith(b"%PDF-") and b"startxref" in data[-2048:] and b"%%EOF" in data[-1024:]):
        raise LatexError(f"{pdf} is not a complete PDF; the last good report.pdf is kept")


_FILE_LINE_ERROR = re.compile(r"^(?P<file>[^\s:]+\.tex):(?P<line>\d+): (?P<msg>.*)$", re.MULTILINE)


_TAG = re.compile(r"\\(?:VAR|BLOCK|#)\{[^}]*\}")


def template_line(template: str, rendered: str, near: int) -> int | None:
    """The line of ``template`` that most likely produced the text line ``rendered``.

    A template line matches when its literal pieces (the text between its tags) occur in
    ``rendered`` in order; the one with the most literal text wins, ties going to the line
    nearest ``near``.
    """
    best: tuple[int, int, int] | None = None  # (literal length, -distance, line)
    for number, line in enumerate(template.splitlines(), start=1):
        pieces = [p.strip() for p in _TAG.split(line) if p.strip()]
        position = 0
        for piece in pieces:
            position = rendered.find(piece, position)
            if position < 0:
                break
            position += len(piece)
        if pieces and position >= 0:
            candidate = (sum(map(len, pieces)), -abs(number - near), number)
            best = max(best or candidate, candidate)
    return best[2] if best else None


def summarize_error(log: str, source_dir: Path, templates: Path | None = None) -> str:
    """The first error of a TeX log as ``file:line: message`` plus the source lines around it,
    and the template line it came from when ``templates`` holds ``<file>.j2``."""
    match = _FILE_LINE_ERROR.search(log)
    if match is None:
        bang = re.search(r"^! .*$", log, re.MULTILINE)
        return bang.group() if bang else "LaTeX failed without an error line; see the log:\n" + log[-1500:]
    file, line, msg = match["file"], int(match["line"]), match["msg"]
    source = source_dir / file
    excerpt = ""
    if source.exists():
        lines = source.read_text(errors="replace").splitlines()
        lo, hi = max(line - 3, 0), min(line + 1, len(lines))
        excerpt = "\n".join(f"{'>' if i + 1 == line else ' '} {i + 1:4d} | {lines[i]}" for i in range(lo, hi))
    origin = f" (rendered from templates/{Path(file)}.j2)"
    template = templates / f"{Path(file)}.j2" if templates else None
    if template is not None and template.is_file() and source.exists() and line <= len(lines):
        found = template_line(template.read_text(errors="replace"), lines[line - 1], line)
        if found is not None:
            origin = f" (from templates/{Path(file)}.j2:{found})"
    return f"{file}:{line}{origin}: {msg}\n{excerpt}".rstrip()


def log_warnings(log: str) -> list[str]:
    """Overfull boxes and undefined references or citations in a TeX log, each with its file.

    The file is the last ``.tex`` file TeX opened before the warning, which is exact for
    the flat ``\\input`` structure of the report.
    """
    patterns = (r"^Overfull \\[hv]box.*$", r"^LaTeX Warning: (Reference|Citation) .* undefined.*$")
    opened = [(m.start(), m[1]) for m in re.finditer(r"\((\./[^\s()]+\.tex)", log)]
    warnings = []
    for pattern in patterns:
        for m in re.finditer(pattern, log, re.MULTILINE):
            files = [name for pos, name in opened if pos < m.start()]
            warnings.append(f"{files[-1] if files else '?'}: {m.group()}")
    return warnings
