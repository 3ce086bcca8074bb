/**
 * Preloaded (`node --import`) into every child of `rushgate up`: when the supervisor goes away
 * without stopping its children (killed with SIGKILL, crashed), the IPC channel to it closes and
 * the child shuts itself down gracefully instead of living on as an orphan that holds its ports.
 * It does nothing in a process started without an IPC channel.
 */
if (process.channel) {
  // The channel must not keep the child alive by itself.
  process.channel.unref();
  process.once('disconnect', () => {
    process.kill(process.pid, 'SIGTERM');
  });
}

export {};
