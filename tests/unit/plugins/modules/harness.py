"""Plain helpers for the unit tests that drive a module's main() (the fixtures are in conftest.py)."""
import pytest

from ansible.module_utils.testing import patch_module_args

REGION = "eu-central-1"


class ModuleExit(Exception):
    """exit_json or fail_json was called; `result` holds what the module returned (with failed=True on failure)."""

    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def run_module(main, args, check=False):
    """The result of main() with these module args plus region and dummy credentials (needs module_exits)."""
    args = dict(args, region=REGION, access_key="a", secret_key="b", _ansible_check_mode=check, _ansible_diff=True)
    with patch_module_args(args):
        with pytest.raises(ModuleExit) as e:
            main()
    return e.value.result
