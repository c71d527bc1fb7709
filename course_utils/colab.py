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
    package's lower bounds accept them, so pip installs only course_utils itself. Each
    notebook runs on a fresh Colab machine, so ``KEEP_ON_DRIVE = True`` mounts Google
    Drive and points ``COURSE_RUNS`` (checkpoints, the baselines of 00, the encoders 08
    compares) and ``COURSE_DATA`` (downloads) there, to last from one notebook to the next."""
    return (
        "# On Colab: install the course package (Colab's own torch is kept). Elsewhere: nothing to do.\n"
        "import sys\n"
        "\n"
        "KEEP_ON_DRIVE = False   # on Colab, True keeps checkpoints, encoders and downloads on Google Drive\n"
        "if \"google.colab\" in sys.modules:\n"
        "    import os\n"
        "    import subprocess\n"
        "\n"
        f"    subprocess.run([sys.executable, \"-m\", \"pip\", \"install\", \"-q\", \"{install_target()}\"], check=True)\n"
        "    if KEEP_ON_DRIVE:\n"
        "        from google.colab import drive\n"
        "\n"
        "        drive.mount(\"/content/drive\")\n"
        "        os.environ[\"COURSE_RUNS\"] = \"/content/drive/MyDrive/ssl_course/runs\"\n"
        "        os.environ[\"COURSE_DATA\"] = \"/content/drive/MyDrive/ssl_course/data\"\n"
    )
