"""The Terraform of the oci profile's resources (the ``*.tf`` files here), and what reads it back: :mod:`.render`
turns ``terraform output -json`` into ``lastmile.yaml``'s ``oci`` profile, :mod:`.policy` parses IAM policy
statements so tests can hold them to least privilege."""
