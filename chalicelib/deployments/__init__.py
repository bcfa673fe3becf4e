"""Deployments: a blueprint become running services.

Pure core (no I/O): `model` (the stored deployment), `merge` (POST/PUT), `slice` (DELETE),
`environment` (variables, dependency order), `gateways` (the gateway documents a deployment
implies), `blueprint` (`as_blueprint`). With I/O: `store`, `sync` (desired vs the driver),
`routing` (the gateway renderer's instances).
"""
