"""Reversible faults on the local profile's real traffic, processes and data: the drills' engine.

=========  ==========================================  ===================================================
kind       targets                                     actions
=========  ==========================================  ===================================================
network    ``object_store``, ``registry``, ``mlflow``,  a Toxiproxy toxic (``latency``, ``bandwidth``,
           ``deployer``, ``service`` (the proxy of     ``timeout``, ``reset_peer``, ``slow_close``,
           that name on the fault proxy);              ``slicer``, ``limit_data``); ``params`` are its
           ``replica:<name>`` (proxy                   attributes plus ``stream``, ``toxicity``, ``name``
           ``replica-<name>``); ``replica:any``
http       the same                                    ``error``: a fault rule (``params``: method, path,
                                                       probability, status, body, headers, content_type,
                                                       preset)
process    ``faults``, ``object_store``, ``registry``,  ``kill`` (SIGKILL), ``pause`` (SIGSTOP), ``resume``
           ``mlflow``, ``deployer`` (the whole process  (SIGCONT), ``restart`` (kill, then the supervisor's
           family); ``replica:<name>``,                 ``up``; a replica's restart is its kill)
           ``replica:any``, ``job:current`` (process
           group)
data       ``object:<bucket>/<key>``,                  ``corrupt``, ``delete``
           ``blob:<repository>@<digest>``
           ``secret:<name>``                           ``remove``, ``rotate``
=========  ==========================================  ===================================================

``replica:any`` is the first ready replica by name; the handle's detail says which. Reverts: a toxic or rule is
removed; a pause gets SIGCONT; a killed or restarted stand-in is started again by the supervisor when it is not
healthy; a killed replica or job has nothing to undo (the controller replaces the replica, the job run stays
FAILED), and the revert says so; a resume has nothing to undo; data is put back unless something wrote there
since; a secret's old value, kept in the secret store as ``<name>.drill-backup``, moves back.

A target that runs in a container (a stand-in, replica or job of the containers profile: the supervisor's, the
controller's and the run's records name it) gets its process faults from the Docker engine (:mod:`.boxed`):
``docker kill``, ``docker pause``/``unpause`` (a pause's revert too) and, for a stand-in, ``docker restart`` (the
same container, so the supervisor's record stays true). Network and http faults are the same on every profile:
the clients still reach the containers through the fault proxy front.

Evidence: a toxic took effect when connections got it and traffic moved through its proxy since injection; a
rule when it answered at least one request; a process fault when its target was running when hit (a resume:
when something was paused); a data fault when the data existed (a rotated credential: when the server still
checks the old one). Active and recently reverted faults are kept in ``<state_dir>/faults/active.json``.
"""

from .injector import LocalFaultInjector

__all__ = ["LocalFaultInjector"]
