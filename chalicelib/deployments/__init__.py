"""Deployments: a blueprint become running services.

Pure core (no I/O): `model` (the stored deployment), `merge` (POST/PUT), `slice` (DELETE),
`environment` (variables, dependency order), `implied_gateways` (the gateway documents a
deployment implies), `cluster_weights` (a cluster's route weights, always 100% in all),
`blueprint` (`as_blueprint`). With I/O: `operations` (the use cases over the store), `sync`
(desired vs the driver, the scheduled pass), `route_targets` (the instances behind a
deployment's routes, which the gateway renderer is given).
"""
