"""Test settings shared by the unit tests and the notebooks that nbval runs.

The notebook kernels inherit this process's environment, so setting it here is how
every notebook runs in the ``fast`` profile under ``pytest``.
"""
import os
import tempfile

# every notebook in the fast profile (COURSE_TEST_PROFILE=cpu pytest notebooks/ tries another)
os.environ["COURSE_PROFILE"] = os.environ.get("COURSE_TEST_PROFILE", "fast")
# a fresh folder for checkpoints and saved encoders, so tests never reuse an old run;
# notebooks later in the course find what earlier ones saved in the same session
os.environ.setdefault("COURSE_RUNS", tempfile.mkdtemp(prefix="course_runs_"))
# tqdm bars as plain text in kernels without a widget front end
os.environ.setdefault("TQDM_MININTERVAL", "5")
