# Make `ansible_collections.appdeploy.ecs` importable from the working tree: .collections/ansible_collections/appdeploy/ecs
# is a symlink to the repository root. `ansible_collections` is a namespace package (no __init__.py here or in
# site-packages), so this path and the installed amazon.aws / community.* collections coexist.
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
