// civicmap-map.js: the map, loaded lazily (a dynamic import() from civicmap.js, see app/maplibre.ts)
// once the form is on screen. An ES module holding MapLibre GL JS and our map code (MapView), so
// that civicmap.js stays small and a citizen can use the form while this arrives.
import * as maplibregl from 'maplibre-gl';

export { MapView } from './app/mapview';
export { maplibregl };
