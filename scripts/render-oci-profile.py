#!/usr/bin/env python3
"""Render lastmile.yaml's `oci` profile from `terraform output -json` (see --help).

    terraform -chdir=adapters/oci/terraform output -json | .venv/bin/python scripts/render-oci-profile.py --write

The work is in adapters/oci/terraform/render.py, next to the Terraform and the table of which output fills
which key.
"""

import sys

from adapters.oci.terraform.render import main

if __name__ == "__main__":
    sys.exit(main())
