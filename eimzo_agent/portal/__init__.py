"""The portal side: an open verification server that answers E-IMZO-server's endpoints (`eimzo-agent portal serve`).

Needs the `portal` extra (aiohttp, redis). Nothing in the agent imports this package.
"""
