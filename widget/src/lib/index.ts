// Pure logic, bundled to .build/lib.mjs for the unit tests (node --test).
export * from './i18n';
export * from './options';
export * from './validate';
export * from './geo';
export * from './choropleth';
export * from './api';
export * from './pow';
export * from './protect';
export * from './own';
export * from './location';
export * from './story';
export * from './staffmap';
export * from './figures';
