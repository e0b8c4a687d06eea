"""Where the releases run: one runtime per `engine.mode`, behind one interface (base.py).

    compose   one Docker host: a release is a compose project (runtime/compose.py)
    swarm     a Docker Swarm cluster: a release is a stack of replicated services
              (runtime/swarm.py, docs/scale-out.md)

The flows order the steps and call `ctx.runtime`; none of them asks which mode it runs in.
runtime/mode.py is the one place that reads the mode.
"""
