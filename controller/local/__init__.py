"""The local run on embedded defaults: scenario, load generator, control loop, recorder (``pitboss demo``)."""
