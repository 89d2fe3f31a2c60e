"""Hostile input never crashes and never escapes: generated malformed recipes (>= 500) and hostile layouts
(>= 200), each rejected with its documented exit code in under 5 s, with no traceback and no write outside
the store or the output directory. In-process through click's CliRunner (the real command, its real exit
path), so hundreds of cases take a minute or two; a smaller sample runs as real subprocesses.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings

from exportctl import errors
from exportctl.cli import main
from exportctl.store import referrers as ref
from exportctl.store.layout import Store
from exportctl.trust.signing import sign_bundle
from tests.unit.hostile import LAYOUT_ATTACKS, MALFORMED_RECIPES, LayoutAttack
from tests.unit.test_signing import exportctl, fake_bundle, snapshot

RECIPES, LAYOUTS = 500, 200
SECONDS = 5.0
_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                        HealthCheck.data_too_large, HealthCheck.large_base_example])


def _tree(root: Path, skip: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if skip not in (p, *p.parents)}


def _invoke(args: list[str]) -> tuple[int, str, float]:
    started = time.monotonic()
    result = CliRunner().invoke(main, args, env={"COLUMNS": "200"})
    elapsed = time.monotonic() - started
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(result.exception))
        raise AssertionError(f"exportctl {args[:2]} raised instead of exiting:\n{trace}")
    return result.exit_code, result.output, elapsed


def test_generated_malformed_recipes_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    store, recipe = tmp_path / "store", tmp_path / "recipe.yaml"
    seen: list[float] = []
    recipe.write_text("name: warm-up\n")  # the first run imports the recipe model: not a per-input cost
    assert _invoke(["plan", str(recipe), "--store", str(store)])[0] == errors.CONFIG_ERROR

    @settings(max_examples=RECIPES, **_SETTINGS)
    @given(MALFORMED_RECIPES)
    def check(text: bytes) -> None:
        recipe.write_bytes(text)
        code, output, elapsed = _invoke(["plan", str(recipe), "--store", str(store), "--json"])
        assert code == errors.CONFIG_ERROR, f"exit {code} for {text[:300]!r}:\n{output[-2000:]}"
        assert "Traceback" not in output and "error" in output
        assert elapsed < SECONDS, f"{elapsed:.1f}s for {text[:200]!r}"
        assert _tree(tmp_path, store) == {"recipe.yaml"}, "something was written beside the recipe"
        seen.append(elapsed)

    check()
    print(f"{len(seen)} malformed recipes, slowest {max(seen):.2f}s, total {sum(seen):.1f}s")
    assert len(seen) >= RECIPES


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("hostile-layouts")
    from exportctl.trust.keys import keygen

    keygen(base / "k.pem", base / "k.pub.pem")
    store = Store.open(base / "store")
    digest = fake_bundle(store)
    sign_bundle(store, digest, key=base / "k.pem", sigstore=False)
    ref.export(store, digest, base / "exported")
    return base / "exported"


def _copy_layout(src: Path, dest: Path) -> None:
    shutil.copytree(src, dest)
    for path in dest.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() else 0o644)


def test_generated_hostile_layouts_exit_7(exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    work = tmp_path / "work"
    seen: list[float] = []
    assert _invoke(["verify", str(exported), "--store", str(tmp_path / "none")])[0] == 0

    @settings(max_examples=LAYOUTS, **_SETTINGS)
    @given(LAYOUT_ATTACKS)
    def check(attack: LayoutAttack) -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        layout = work / "layout"
        _copy_layout(exported, layout)
        attack.apply(layout)
        before = snapshot(work)
        code, output, elapsed = _invoke(["verify", str(layout), "--json", "--store", str(work / "no-store")])
        assert code == errors.VERIFY_FAILED, f"exit {code} for {attack}:\n{output[-2000:]}"
        assert "Traceback" not in output
        assert elapsed < SECONDS, f"{elapsed:.1f}s for {attack}"
        assert snapshot(work) == before, "verify changed or added files"
        seen.append(elapsed)

    check()
    print(f"{len(seen)} hostile layouts, slowest {max(seen):.2f}s, total {sum(seen):.1f}s")
    assert len(seen) >= LAYOUTS


def test_a_sample_as_real_processes(exported: Path, tmp_path: Path) -> None:
    """The same kinds of input through `python -m exportctl`, as users run it: exit code, no traceback."""
    samples: list[bytes] = []
    layouts: list[LayoutAttack] = []

    @settings(max_examples=5, **_SETTINGS)
    @given(MALFORMED_RECIPES, LAYOUT_ATTACKS)
    def collect(text: bytes, attack: LayoutAttack) -> None:
        samples.append(text)
        layouts.append(attack)

    collect()
    for i, text in enumerate(samples):
        recipe = tmp_path / f"r{i}.yaml"
        recipe.write_bytes(text)
        done = exportctl("plan", recipe, "--json", store=tmp_path / "store", check=False)
        assert done.returncode == errors.CONFIG_ERROR and "Traceback" not in done.stderr, done.stderr
    for i, attack in enumerate(layouts):
        layout = tmp_path / f"l{i}" / "layout"
        _copy_layout(exported, layout)
        attack.apply(layout)
        done = exportctl("verify", layout, "--json", store=tmp_path / "store", check=False)
        assert done.returncode == errors.VERIFY_FAILED and "Traceback" not in done.stderr, (attack, done.stderr)
    for special in ("/dev/zero", str(tmp_path)):
        done = exportctl("plan", special, store=tmp_path / "store", check=False)
        assert done.returncode == errors.CONFIG_ERROR and "Traceback" not in done.stderr, done.stderr


def test_hostile_keys(exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys: wrong curve, encrypted without a password, public for private and back, devices, directories."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    monkeypatch.delenv("EXPORTCTL_KEY_PASSWORD", raising=False)
    store = Store.open(tmp_path / "store")
    digest = fake_bundle(store)
    k1 = ec.generate_private_key(ec.SECP256K1())
    p256 = ec.generate_private_key(ec.SECP256R1())
    pem = serialization.Encoding.PEM
    files = {
        "k1.pem": k1.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "k1.pub.pem": k1.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
        "locked.pem": p256.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"secret")),
        "p256.pub.pem": p256.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
        "p256.pem": p256.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "garbage.pem": b"-----BEGIN PUBLIC KEY-----\n\xff\xfe\n-----END PUBLIC KEY-----\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    before = snapshot(store.root)
    signing = ["k1.pem", "locked.pem", "p256.pub.pem", "garbage.pem", "/dev/zero", str(tmp_path)]
    for key in signing:
        code, output, _ = _invoke(["sign", digest, "--key", str(tmp_path / key), "--store", str(store.root)])
        assert code == errors.SIGNING_FAILED and "Traceback" not in output, (key, output)
    for key in ["k1.pub.pem", "p256.pem", "garbage.pem", "locked.pem", "/dev/zero", str(tmp_path)]:
        code, output, _ = _invoke(["verify", str(exported), "--key", str(tmp_path / key)])
        assert code == errors.SIGNATURE_INVALID and "Traceback" not in output, (key, output)
        assert "BEGIN" not in output
    assert snapshot(store.root) == before
