"""The GPU speed paths: the whole step as one CUDA graph, several runs in one process, the compile cache and
the preflight that measures them. Imported only when a run or command asks for one."""
