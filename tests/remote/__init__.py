"""Tests against real storage endpoints on loopback (issue 20): S3 (moto's server) and SFTP (OpenSSH).

``tests/remote`` is a package (``__init__.py``) so that its ``conftest.py`` (the servers) is imported
as ``remote.conftest`` and does not replace ``tests/conftest.py``.
"""
