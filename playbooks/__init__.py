"""The playbooks bundled with ir, shipped as package data (YAML files beside this module)."""
