"""Only for chalicelib/releases/ until its imports move to event_backend (issue 8, the releases
clean-up on another branch). Delete this module then."""
from chalicelib.store.event_backend import event_store  # noqa: F401
