"""Placeholder: the sim helper replaces this with running_sim / SimHandle / the sim_cluster fixture."""
