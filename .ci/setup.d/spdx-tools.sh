# Installs the SPDX project's validator (pyspdxtools, Python package spdx-tools) in
# a virtualenv; the SBOM tests run it on the documents forge writes.
set -eu
if [ -x /opt/spdx-tools/bin/pyspdxtools ]; then
    exit 0
fi
python3 -m venv /opt/spdx-tools
/opt/spdx-tools/bin/pip install --quiet spdx-tools
