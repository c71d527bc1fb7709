"""Where the course lives online: the one place that holds the repository address.

Each notebook starts with an "Open in Colab" badge and a set-up cell made from this
module by ``python scripts/build_notebooks.py --stamp``. To publish the course under
another address, change ``REPOSITORY`` here and run that command once.
"""
from __future__ import annotations

REPOSITORY = "ssl-course/ssl-course"   # GitHub owner/name of the published course
BRANCH = "main"
BADGE_PREFIX = "[![Open In Colab]"


def badge(notebook: str) -> str:
    """Markdown for the 'Open in Colab' badge of ``notebook`` (a file name in notebooks/)."""
    url = f"https://colab.research.google.com/github/{REPOSITORY}/blob/{BRANCH}/notebooks/{notebook}"
    return f"{BADGE_PREFIX}(https://colab.research.google.com/assets/colab-badge.svg)]({url})"


def install_target() -> str:
    return f"course_utils @ git+https://github.com/{REPOSITORY}@{BRANCH}"


def setup_cell() -> str:
    """The first code cell of every notebook: installs the course on Colab, nothing elsewhere.

    Colab already has torch, torchvision, matplotlib, scikit-learn and ipywidgets; the
    package's lower bounds accept them, so pip installs only course_utils itself."""
    return (
        "# On Colab: install the course package (Colab's own torch is kept). Elsewhere: nothing to do.\n"
        "import sys\n"
        "\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import subprocess\n"
        "\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"{install_target()}\"], check=True)\n"
    )
