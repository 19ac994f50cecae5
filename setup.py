"""The packages of the distribution; everything else is in pyproject.toml.

Here rather than in pyproject.toml because the list is both discovered and extended: every
Python package under patronpay/, proxy/, sandbox/ and kiosk/ (found, so a new one ships without
an edit here), plus the top-level site/ folder shipped as the package `patronpay_site` (a
package named `site` would shadow the standard library's). patronpay/site_files.py finds it.
"""

from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["patronpay*", "proxy*", "sandbox*", "kiosk*"]),
              "patronpay_site"],
    package_dir={"patronpay_site": "site"},
)
