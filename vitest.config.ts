import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // real servers and processes on a 2-core machine: two files at a time is plenty
    maxWorkers: 2,
    reporters: ['default'],
  },
});
