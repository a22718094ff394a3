"""Fingerprint stability and sensitivity, and .dockerignore semantics (moby patternmatcher)."""
import os
import shutil
import tarfile
import time

import pytest

from ansible_collections.appdeploy.ecs.plugins.module_utils import fingerprint as fpr
from ansible_collections.appdeploy.ecs.plugins.module_utils import docker_engine


def make_tree(root, files, ignore=None):
    os.makedirs(root, exist_ok=True)
    for rel, content in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(content)
    if ignore is not None:
        with open(os.path.join(root, ".dockerignore"), "w") as f:
            f.write(ignore)
    return root


BASE = {"Dockerfile": "FROM scratch\nCOPY . /app\n", "app/main.py": "print(1)\n", "app/data/x.txt": "x",
        "README.md": "readme", "build/out.bin": "junk", "notes.tmp": "tmp"}


@pytest.fixture
def ctx(tmp_path):
    return make_tree(str(tmp_path / "ctx"), BASE, ignore="build\n*.tmp\n")


def fp(path, **kw):
    return fpr.fingerprint(path, **kw)[0]


def test_stable_across_runs_copies_and_mtimes(ctx, tmp_path):
    first = fp(ctx)
    assert fp(ctx) == first
    other = str(tmp_path / "elsewhere" / "ctx")
    shutil.copytree(ctx, other)  # different absolute path
    for dirpath, _dirs, files in os.walk(other):
        for name in files:
            os.utime(os.path.join(dirpath, name), (time.time() - 86400, time.time() - 86400))
    assert fp(other) == first


@pytest.mark.parametrize("mutate", [
    lambda c: open(os.path.join(c, "app/main.py"), "a").write("print(2)\n"),
    lambda c: open(os.path.join(c, "Dockerfile"), "a").write("ENV A=1\n"),
    lambda c: os.chmod(os.path.join(c, "app/main.py"), 0o755),
    lambda c: open(os.path.join(c, "app/new.py"), "w").write(""),
    lambda c: os.rename(os.path.join(c, "app/data/x.txt"), os.path.join(c, "app/data/y.txt")),
    lambda c: os.makedirs(os.path.join(c, "app/empty")),
    lambda c: os.symlink("main.py", os.path.join(c, "app/link.py")),
])
def test_sensitive_to_context_changes(ctx, mutate):
    before = fp(ctx)
    mutate(ctx)
    assert fp(ctx) != before


@pytest.mark.parametrize("kw", [{"build_args": {"A": "1"}}, {"target": "prod"}, {"platform": "linux/arm64"}])
def test_sensitive_to_build_parameters(ctx, kw):
    assert fp(ctx, **kw) != fp(ctx)


def test_build_args_order_and_types_do_not_matter(ctx):
    assert fp(ctx, build_args={"A": 1, "B": "x"}) == fp(ctx, build_args={"B": "x", "A": "1"})


def test_ignored_files_do_not_matter(ctx):
    before = fp(ctx)
    open(os.path.join(ctx, "build/out.bin"), "w").write("different")
    open(os.path.join(ctx, "other.tmp"), "w").write("new")
    os.makedirs(os.path.join(ctx, "build/deeper"))
    assert fp(ctx) == before


def test_dockerignore_content_change_that_changes_the_file_set_matters(ctx):
    before = fp(ctx)
    with open(os.path.join(ctx, ".dockerignore"), "w") as f:
        f.write("build\n")  # notes.tmp now included
    assert fp(ctx) != before


def test_missing_dockerfile_and_context(tmp_path):
    make_tree(str(tmp_path / "c"), {"a": "1"})
    with pytest.raises(fpr.FingerprintError, match="Dockerfile"):
        fpr.fingerprint(str(tmp_path / "c"))
    with pytest.raises(fpr.FingerprintError, match="not a directory"):
        fpr.context_entries(str(tmp_path / "nope"))


def test_dockerfile_elsewhere_in_context(ctx):
    os.makedirs(os.path.join(ctx, "docker"))
    open(os.path.join(ctx, "docker/App.Dockerfile"), "w").write("FROM scratch\n")
    a = fp(ctx, dockerfile="docker/App.Dockerfile")
    open(os.path.join(ctx, "docker/App.Dockerfile"), "a").write("ENV X=1\n")
    assert fp(ctx, dockerfile="docker/App.Dockerfile") != a


# ------------------------------------------------------------------------------------------------ .dockerignore
@pytest.mark.parametrize("patterns,path,excluded", [
    ("*.tmp", "a.tmp", True),
    ("*.tmp", "dir/a.tmp", False),            # * does not cross /
    ("*/*.tmp", "dir/a.tmp", True),
    ("**/*.tmp", "a.tmp", True),               # ** matches zero directories
    ("**/*.tmp", "x/y/z/a.tmp", True),
    ("docs/**", "docs/a/b.md", True),
    ("docs/**", "docsx/a", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "a/x/y/c", False),
    ("?.txt", "a.txt", True),
    ("?.txt", "ab.txt", False),
    ("[ab].txt", "b.txt", True),
    ("[!ab].txt", "b.txt", False),
    ("[!ab].txt", "c.txt", True),
    ("build", "build/deep/file", True),      # parent directory matches
    ("./build/", "build/x", True),             # cleaned
    ("/build", "build/x", True),               # leading slash dropped
    ("a/../build", "build", True),
    ("# comment\n\n  build  ", "build", True),
    ("#build", "#build", False),
    ("*\n!keep.txt", "keep.txt", False),
    ("*\n!keep.txt", "other.txt", True),
    ("*.md\n!README*.md\nREADME-secret.md", "README-secret.md", True),   # last match wins
    ("*.md\n!README*.md\nREADME-secret.md", "README.md", False),
    ("logs\n!logs/keep", "logs/keep", False),
    ("logs\n!logs/keep", "logs/other", True),
    ("!a\nb", "a", False),
    ("\\*literal", "*literal", True),
    ("\\*literal", "xliteral", False),
])
def test_dockerignore_matching(patterns, path, excluded):
    assert fpr.DockerIgnore.from_text(patterns).excluded(path) is excluded


def rels(root, ignore, files=None, **kw):
    make_tree(root, files or {"Dockerfile": "FROM scratch\n", "src/a.py": "", "src/b.pyc": "", "logs/keep": "",
                              "logs/old/x.log": "", "node_modules/m/index.js": "", "secret.env": ""}, ignore=ignore)
    return [e[0] for e in fpr.context_entries(root, **kw)]


def test_walk_skips_excluded_directories_and_descends_for_exceptions(tmp_path):
    got = rels(str(tmp_path / "c"), "logs\n!logs/keep\nnode_modules\n**/*.pyc\nsecret.env\n")
    assert got == [".dockerignore", "Dockerfile", "logs/keep", "src", "src/a.py"]


def test_dockerfile_and_dockerignore_always_sent(tmp_path):
    got = rels(str(tmp_path / "c"), "*\n")
    assert got == [".dockerignore", "Dockerfile"]


def test_exception_without_directory_prefix_does_not_rescue_excluded_dir(tmp_path):
    # as in Docker: an excluded directory is only walked when an exception pattern starts with its path
    got = rels(str(tmp_path / "c"), "logs\n!**/keep\n")
    assert "logs/keep" not in got


@pytest.mark.parametrize("ignore", [
    "", "src\n", "*.pyc\n", "**/*.log\n", "logs\n!logs/keep\n", "node_modules\nsecret.env\n", "*\n!src\n",
    "src/*.py\n", "**/m\n",
])
def test_agrees_with_docker_sdk(tmp_path, ignore):
    """The Docker SDK for Python implements the same semantics; the file sets must agree on ordinary patterns."""
    du = pytest.importorskip("docker.utils.build")
    root = str(tmp_path / "c")
    ours = set(rels(root, ignore))
    theirs = set(p.replace(os.sep, "/") for p in du.exclude_paths(root, [l for l in ignore.splitlines() if l]))
    theirs.add(".dockerignore")
    assert ours == theirs


def test_context_tar_is_exactly_the_fingerprinted_set(ctx):
    _fp, entries = fpr.fingerprint(ctx)
    buf, df = docker_engine.context_tar(ctx, entries, "Dockerfile")
    with tarfile.open(fileobj=buf, mode="r:gz") as tar:
        names = sorted(m.name for m in tar.getmembers())
        assert all(m.uid == 0 and m.gid == 0 for m in tar.getmembers())
    assert df == "Dockerfile"
    assert names == [e[0] for e in entries]
    assert "build" not in names and "notes.tmp" not in names


def test_context_tar_with_external_dockerfile(ctx, tmp_path):
    ext = tmp_path / "Ext.Dockerfile"
    ext.write_text("FROM scratch\n")
    _fp, entries = fpr.fingerprint(ctx, dockerfile=str(ext))
    buf, df = docker_engine.context_tar(ctx, entries, str(ext))
    assert df == docker_engine.EXTERNAL_DOCKERFILE
    with tarfile.open(fileobj=buf, mode="r:gz") as tar:
        assert tar.extractfile(df).read() == b"FROM scratch\n"


def test_fingerprint_tag():
    assert fpr.fingerprint_tag("ab" * 32) == "fp-" + ("ab" * 32)[:40]


def test_excluded_dockerignore_and_dockerfile_are_sent_but_not_hashed_as_files(tmp_path):
    root = make_tree(str(tmp_path / "c"), {"Dockerfile": "FROM scratch\n", "a": "1"}, ignore=".dockerignore\nDockerfile\n")
    entries = fpr.context_entries(root)
    assert [e[0] for e in entries] == [".dockerignore", "Dockerfile", "a"]  # the daemon needs both
    assert entries.forced == {".dockerignore", "Dockerfile"}
    before = fp(root)
    with open(os.path.join(root, ".dockerignore"), "a") as f:
        f.write("# a comment does not change what the image can see\n")
    assert fp(root) == before
    with open(os.path.join(root, "Dockerfile"), "a") as f:
        f.write("ENV A=1\n")
    assert fp(root) != before  # the Dockerfile's content always counts


def test_included_dockerignore_is_part_of_the_context(tmp_path):
    root = make_tree(str(tmp_path / "c"), {"Dockerfile": "FROM scratch\nCOPY . /\n"}, ignore="*.tmp\n")
    before = fp(root)
    with open(os.path.join(root, ".dockerignore"), "a") as f:
        f.write("# COPY . copies this file, so it counts\n")
    assert fp(root) != before
