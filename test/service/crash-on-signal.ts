/**
 * Preloaded (`node --import`) into `hoptrace serve` by serve-command.test.ts: on SIGUSR2 the
 * process meets an uncaught exception, or with HOPTRACE_TEST_CRASH=rejection an unhandled
 * rejection, as a bug in the service would. The service's own handlers must take it from there.
 */
process.on('SIGUSR2', () => {
  if (process.env.HOPTRACE_TEST_CRASH === 'rejection') {
    void Promise.reject(new Error('a rejected promise nobody handled (test)'));
    return;
  }
  setImmediate(() => {
    throw new Error('a bug in the service (test)');
  });
});
