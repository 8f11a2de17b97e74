"""Local files another user could have written: found out from owners and modes, up to /."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from tasks.errors import ConfigError, SafetyRefusal
from tasks.s3.private_files import (
    check_input_file,
    check_plan_file,
    private_folder,
    why_not_private,
)
from tests.support.neighbour import as_root, give_to_nobody, nobody, shared_folder


def written(path: Path, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}\n")
    path.chmod(mode)
    return path


class TestWhyNotPrivate:
    def test_trusts_a_file_when_this_user_owns_it_and_every_folder_above(
        self, tmp_path: Path
    ) -> None:
        assert why_not_private(written(tmp_path / "plans" / "plan.jsonl")) is None

    def test_trusts_a_file_when_a_sticky_folder_above_holds_its_folder(
        self, tmp_path: Path
    ) -> None:
        shared = shared_folder(tmp_path / "shared")

        assert why_not_private(written(shared / "mine" / "plan.jsonl")) is None

    def test_trusts_a_file_readable_by_others_when_none_of_them_can_write_it(
        self, tmp_path: Path
    ) -> None:
        assert why_not_private(written(tmp_path / "plan.jsonl", 0o644)) is None

    @as_root
    def test_names_the_owner_when_another_user_owns_the_file(self, tmp_path: Path) -> None:
        plan = written(tmp_path / "plan.jsonl")
        give_to_nobody(plan)

        assert why_not_private(plan) == f"it belongs to another user (uid {nobody()[0]})"

    @pytest.mark.parametrize(
        ("mode", "who"),
        [(0o666, "its group and others"), (0o620, "its group"), (0o602, "others")],
    )
    def test_names_the_mode_when_others_can_write_the_file(
        self, tmp_path: Path, mode: int, who: str
    ) -> None:
        plan = written(tmp_path / "plan.jsonl", mode)

        assert why_not_private(plan) == f"it is writable by {who} (mode {mode:04o})"

    def test_names_the_folder_when_others_can_write_a_folder_above(self, tmp_path: Path) -> None:
        folder = tmp_path / "open"
        plan = written(folder / "inner" / "plan.jsonl")
        folder.chmod(0o777)

        assert why_not_private(plan) == (
            f"its folder '{folder}' is writable by its group and others (mode 0777)"
        )

    @as_root
    def test_names_the_folder_when_another_user_owns_a_sticky_folder_above(
        self, tmp_path: Path
    ) -> None:
        shared = shared_folder(tmp_path / "theirs")
        give_to_nobody(shared)

        reason = why_not_private(written(shared / "mine" / "plan.jsonl"))

        assert reason == f"its folder '{shared}' belongs to another user (uid {nobody()[0]})"

    def test_refuses_a_sticky_folder_when_it_is_the_folder_asked_about(
        self, tmp_path: Path
    ) -> None:
        shared = shared_folder(tmp_path / "shared")

        assert why_not_private(shared) == "it is writable by its group and others (mode 1777)"

    @as_root
    def test_checks_where_a_link_leads_when_the_path_is_a_link(self, tmp_path: Path) -> None:
        theirs = written(tmp_path / "elsewhere" / "plan.jsonl")
        give_to_nobody(theirs)
        link = tmp_path / "plan.jsonl"
        link.symlink_to(theirs)

        assert why_not_private(link) == f"it belongs to another user (uid {nobody()[0]})"

    @as_root
    def test_refuses_a_link_when_another_user_made_it(self, tmp_path: Path) -> None:
        link = tmp_path / "plan.jsonl"
        link.symlink_to(written(tmp_path / "mine.jsonl"))
        give_to_nobody(link)

        assert why_not_private(link) == f"it belongs to another user (uid {nobody()[0]})"

    def test_says_it_cannot_be_checked_when_the_path_is_missing(self, tmp_path: Path) -> None:
        missing = tmp_path / "none.jsonl"

        assert why_not_private(missing) == (
            f"cannot be checked: '{missing}' No such file or directory"
        )


class TestPrivateFolder:
    def test_creates_every_missing_folder_for_this_user_only_when_none_is_there(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "manifests" / "bucket"

        private_folder(folder)

        modes = [stat.S_IMODE(path.stat().st_mode) for path in (folder.parent, folder)]
        assert modes == [0o700, 0o700]

    def test_creates_its_folder_when_a_sticky_folder_is_to_hold_it(self, tmp_path: Path) -> None:
        shared = shared_folder(tmp_path / "shared")

        private_folder(shared / "manifests" / "bucket")

        assert stat.S_IMODE((shared / "manifests").stat().st_mode) == 0o700

    def test_refuses_before_anything_is_written_when_the_folder_is_writable_by_others(
        self, tmp_path: Path
    ) -> None:
        folder = tmp_path / "manifests"
        folder.mkdir()
        folder.chmod(0o777)

        with pytest.raises(SafetyRefusal) as refused:
            private_folder(folder / "bucket")

        assert refused.value.guard == "plan_file"
        assert (
            f"the folder '{folder}' where plans are written cannot be trusted: it is writable by "
            "its group and others (mode 0777)"
        ) in str(refused.value)
        assert list(folder.iterdir()) == []

    @as_root
    def test_refuses_when_another_user_made_the_folder_first(self, tmp_path: Path) -> None:
        shared = shared_folder(tmp_path / "shared")
        (shared / "manifests").mkdir(mode=0o755)
        give_to_nobody(shared / "manifests")

        with pytest.raises(SafetyRefusal, match="belongs to another user"):
            private_folder(shared / "manifests" / "bucket")

        assert not (shared / "manifests" / "bucket").exists()


class TestChecks:
    def test_refuses_a_plan_file_naming_it_when_others_can_write_it(self, tmp_path: Path) -> None:
        plan = written(tmp_path / "plan.jsonl", 0o666)

        with pytest.raises(SafetyRefusal) as refused:
            check_plan_file(plan)

        assert refused.value.guard == "plan_file"
        assert str(refused.value) == (
            f"refused by plan_file: the plan file '{plan}' cannot be trusted: it is writable "
            "by its group and others (mode 0666); nothing was deleted"
        )

    @as_root
    def test_rejects_an_input_file_naming_it_when_another_user_owns_it(
        self, tmp_path: Path
    ) -> None:
        targets = written(tmp_path / "targets.yaml", 0o644)
        give_to_nobody(targets)

        with pytest.raises(ConfigError) as rejected:
            check_input_file(targets, "targets file")

        assert f"targets file '{targets}' cannot be trusted" in str(rejected.value)
        assert rejected.value.problems == [
            f"{targets}: it belongs to another user (uid {nobody()[0]})"
        ]

    def test_passes_a_private_file_when_checked(self, tmp_path: Path) -> None:
        plan = written(tmp_path / "plan.jsonl")

        check_plan_file(plan)
        check_input_file(plan, "targets file")
