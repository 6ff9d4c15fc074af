"""A plain install carries our gin files and tasks; the venv matches the lock."""

import os
import subprocess
import sys
import zipfile

import pytest

from tests import repo_paths



@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
  out = tmp_path_factory.mktemp("wheel")
  subprocess.run(
      [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
       "--no-build-isolation", "-w", str(out), repo_paths.REPO_DIR],
      check=True, capture_output=True)
  wheels = [name for name in os.listdir(out) if name.endswith(".whl")]
  assert len(wheels) == 1, wheels
  with zipfile.ZipFile(out / wheels[0]) as archive:
    names = set(archive.namelist())
    entry_points = [n for n in names if n.endswith("entry_points.txt")]
    assert len(entry_points) == 1, entry_points
    return names, archive.read(entry_points[0]).decode()


def test_wheel_ships_every_gin_file_under_the_package(wheel):
  wheel_names, _ = wheel
  for root, _, files in os.walk(os.path.join(repo_paths.REPO_DIR, "gin")):
    for name in files:
      if name.endswith(".gin"):
        rel = os.path.relpath(os.path.join(root, name),
                              repo_paths.REPO_DIR)
        assert "switch_mtf/" + rel in wheel_names, rel


def test_wheel_ships_every_module_and_the_task_data(wheel):
  wheel_names, _ = wheel
  package_dir = os.path.join(repo_paths.REPO_DIR, "switch_mtf")
  for root, _, files in os.walk(package_dir):
    if "__pycache__" in root:
      continue
    for name in files:
      rel = os.path.relpath(os.path.join(root, name), repo_paths.REPO_DIR)
      assert rel in wheel_names, rel


def test_wheel_declares_the_torch_free_launcher(wheel):
  _, entry_points = wheel
  assert ("switch_mtf_transformer = switch_mtf.cli.launcher:console_entry_point"
          in entry_points)


def test_installed_packages_match_the_lock():
  lock = os.path.join(repo_paths.REPO_DIR, "requirements", "lock-py311.txt")
  pinned = {}
  for line in open(lock):
    line = line.strip()
    if line and not line.startswith("#"):
      name, version = line.split("==")
      pinned[name.lower().replace("_", "-")] = version
  frozen = subprocess.run(
      [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
      check=True, capture_output=True, text=True).stdout.splitlines()
  torch_lock = open(os.path.join(repo_paths.REPO_DIR, "requirements",
                                 "torch-py311.txt")).read().lower()
  for line in frozen:
    name, version = line.split("==")
    key = name.lower().replace("_", "-")
    if key + "==" in torch_lock.replace("_", "-"):
      continue  # the optional torch set (`make setup-torch`)
    assert pinned.get(key) == version, (
        "%s==%s is installed but the lock says %s" % (name, version,
                                                      pinned.get(key)))
