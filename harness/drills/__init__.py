"""Failure drills: Chaos Toolkit experiments run against a lastmile profile, with lastmile's verdict.

A drill is a Chaos Toolkit experiment (``scenarios/drills/*.yaml``). Chaos Toolkit's engine runs it; this package
is the rest:

- :mod:`harness.drills.actions` and :mod:`harness.drills.probes`: the Chaos Toolkit extension (python providers)
  a drill names, e.g. ``{"type": "python", "module": "harness.drills.actions", "func": "inject"}``;
- :mod:`harness.drills.catalog`: the registry of those activities (``lastmile drill activities`` lists it);
- :mod:`harness.drills.context`: where activities get their harness (and the hook tests use to hand one in),
  and the faults the running drill injected;
- :mod:`harness.drills.invariants` and :mod:`harness.drills.leaks`: what must hold after every drill;
- :mod:`harness.drills.verdict`, :mod:`harness.drills.runner`, :mod:`harness.drills.junit`: the verdict, the
  journal under ``<state_dir>/drills/<id>/journal.json`` and the JUnit XML for CI;
- :mod:`harness.drills.control`: a Chaos Toolkit control so that ``chaos run`` concludes a drill as lastmile does.

Nothing is imported here, so ``chaos run`` loads only the modules a drill names.
"""
