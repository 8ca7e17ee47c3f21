import type { I18nText, Lang } from './types';

/** 'fr', 'fr-FR', 'FR_ca' -> 'fr'; 'en-GB' -> 'en'; anything else -> null. */
export function normalizeLang(v: string | null | undefined): Lang | null {
  if (!v) return null;
  const m = /^\s*([a-z]{2})(?:[-_].*)?\s*$/i.exec(v);
  if (!m) return null;
  const l = m[1].toLowerCase();
  return l === 'fr' || l === 'en' ? l : null;
}

/** Language order: explicit attribute, else the host page's <html lang>, else the campaign's default, else French. */
export function chooseLang(attr: string | null | undefined, docLang: string | null | undefined, campaignDefault: string | null | undefined): Lang {
  return normalizeLang(attr) ?? normalizeLang(docLang) ?? normalizeLang(campaignDefault) ?? 'fr';
}

/** Picks the text in `lang`, falling back to the other language. */
export function tr(text: I18nText | null | undefined, lang: Lang): string {
  if (text == null) return '';
  if (typeof text === 'string') return text;
  return text[lang] ?? text[lang === 'fr' ? 'en' : 'fr'] ?? '';
}

const S = {
  loading: { fr: 'Chargement de la carte…', en: 'Loading the map…' },
  loadError: { fr: 'La carte n’a pas pu être chargée.', en: 'The map could not be loaded.' },
  notFound: { fr: 'Cette campagne n’existe pas ou n’est pas publiée.', en: 'This campaign does not exist or is not published.' },
  retry: { fr: 'Réessayer', en: 'Try again' },
  mapLabel: { fr: 'Carte des contributions par quartier', en: 'Map of contributions by district' },
  mapHelpContribute: {
    fr: 'Cliquez sur la carte à l’endroit de votre logement pour y placer votre repère. Au clavier : donnez le focus à la carte, déplacez le repère avec les flèches, validez avec Entrée.',
    en: 'Click the map where you live to place your pin. With a keyboard: focus the map, move the pin with the arrow keys, confirm with Enter.',
  },
  mapHelpView: {
    fr: 'Survolez ou touchez un quartier pour voir son nombre de contributions. Au clavier : donnez le focus à la carte et déplacez le curseur avec les flèches.',
    en: 'Hover or tap a district to see its number of contributions. With a keyboard: focus the map and move the cursor with the arrow keys.',
  },
  noWebgl: {
    fr: 'La carte interactive n’est pas disponible dans ce navigateur. Vous pouvez tout de même participer avec le formulaire et consulter le tableau des résultats.',
    en: 'The interactive map is not available in this browser. You can still take part with the form and read the results table.',
  },
  mapUnavailable: {
    fr: 'La carte n’a pas pu être chargée. Vous pouvez tout de même participer avec le formulaire et consulter le tableau des résultats.',
    en: 'The map could not be loaded. You can still take part with the form and read the results table.',
  },
  mapLoading: { fr: 'Chargement de la carte…', en: 'Loading the map…' },
  mapLoadingContribute: {
    fr: 'Chargement de la carte… Vous pouvez déjà participer : choisissez votre quartier dans le formulaire.',
    en: 'Loading the map… You can already take part: choose your district in the form.',
  },
  legendTitle: { fr: 'Contributions par quartier', en: 'Contributions by district' },
  legendWithheld: { fr: 'moins de {k} (masqué)', en: 'fewer than {k} (hidden)' },
  legendDemand: {
    fr: 'Demande : estimations, avec un bruit ajouté pour la confidentialité, mises à jour {every}',
    en: 'Demand: estimates, with noise added for privacy, updated {every}',
  },
  everyWeek: { fr: 'chaque semaine', en: 'every week' },
  everyDay: { fr: 'chaque jour', en: 'every day' },
  fewerThan: { fr: 'moins de {k}', en: 'fewer than {k}' },
  contribOne: { fr: '{n} contribution', en: '{n} contribution' },
  contribMany: { fr: '{n} contributions', en: '{n} contributions' },
  contribFewer: { fr: 'moins de {k} contributions', en: 'fewer than {k} contributions' },
  total: { fr: 'Total : {v}', en: 'Total: {v}' },
  outside: { fr: 'Hors des quartiers de la campagne', en: 'Outside the campaign’s districts' },
  statusOpen: { fr: 'Ouverte', en: 'Open' },
  statusOpenUntil: { fr: 'Ouverte jusqu’au {d}', en: 'Open until {d}' },
  statusClosed: { fr: 'Clôturée', en: 'Closed' },
  statusClosedOn: { fr: 'Clôturée le {d}', en: 'Closed on {d}' },
  statusDraft: { fr: 'Pas encore ouverte', en: 'Not open yet' },
  statusOpensOn: { fr: 'Ouvre le {d}', en: 'Opens on {d}' },
  closedNotice: { fr: 'Cette campagne n’accepte pas de contributions en ce moment. Voici les résultats.', en: 'This campaign is not accepting contributions at the moment. Here are the results.' },
  formTitle: { fr: 'Ajouter ma contribution', en: 'Add my contribution' },
  requiredNote: { fr: 'Les champs marqués d’un astérisque (*) sont obligatoires.', en: 'Fields marked with an asterisk (*) are required.' },
  requiredMark: { fr: 'obligatoire', en: 'required' },
  locationLegend: { fr: 'Votre emplacement', en: 'Your location' },
  locationNone: { fr: 'Aucun emplacement choisi pour l’instant.', en: 'No location chosen yet.' },
  locationSet: { fr: 'Repère placé : {d}', en: 'Pin placed: {d}' },
  locationHowMap: { fr: 'Cliquez sur la carte, ou bien :', en: 'Click the map, or:' },
  locationHowNoMap: { fr: 'Choisissez votre quartier ou saisissez des coordonnées :', en: 'Choose your district or enter coordinates:' },
  useMyLocation: { fr: 'Utiliser ma position', en: 'Use my location' },
  useMyLocationNote: { fr: 'Votre navigateur vous demandera l’autorisation. La position sert seulement à placer le repère, que vous pouvez déplacer.', en: 'Your browser will ask for permission. The position is only used to place the pin, which you can move.' },
  locating: { fr: 'Recherche de votre position…', en: 'Finding your position…' },
  geoDenied: { fr: 'Position non disponible (autorisation refusée ou délai dépassé). Choisissez votre quartier ou cliquez sur la carte.', en: 'Position unavailable (permission denied or timed out). Choose your district or click the map.' },
  geoUnsupported: { fr: 'Votre navigateur ne permet pas la géolocalisation.', en: 'Your browser does not support geolocation.' },
  district: { fr: 'Quartier', en: 'District' },
  chooseDistrict: { fr: 'Ou choisissez votre quartier', en: 'Or choose your district' },
  chooseDistrictPlaceholder: { fr: '— Choisir un quartier —', en: '— Choose a district —' },
  districtPinNote: { fr: 'Le repère est placé au centre du quartier.', en: 'The pin is placed at the centre of the district.' },
  coordsSummary: { fr: 'Saisir des coordonnées (longitude, latitude)', en: 'Enter coordinates (longitude, latitude)' },
  longitude: { fr: 'Longitude (ex. 2,2069)', en: 'Longitude (e.g. 2.2069)' },
  latitude: { fr: 'Latitude (ex. 48,8924)', en: 'Latitude (e.g. 48.8924)' },
  placePin: { fr: 'Placer le repère', en: 'Place the pin' },
  address: { fr: 'Rechercher une adresse', en: 'Search for an address' },
  search: { fr: 'Rechercher', en: 'Search' },
  searching: { fr: 'Recherche…', en: 'Searching…' },
  noResults: { fr: 'Aucune adresse trouvée.', en: 'No address found.' },
  geocoderError: { fr: 'La recherche d’adresse n’a pas fonctionné.', en: 'The address search failed.' },
  results: { fr: 'Résultats', en: 'Results' },
  addressHint: {
    fr: 'Tapez le début de votre adresse (numéro et rue), puis choisissez-la dans la liste avec les flèches et Entrée.',
    en: 'Type the start of your address (number and street), then choose it in the list with the arrow keys and Enter.',
  },
  addressSuggestions: {
    fr: '{n} adresse(s) proposée(s) : flèche bas pour les parcourir.',
    en: '{n} address(es) suggested: arrow down to go through them.',
  },
  submit: { fr: 'Envoyer ma contribution', en: 'Send my contribution' },
  sending: { fr: 'Envoi en cours…', en: 'Sending…' },
  privacy: {
    fr: 'Votre position exacte n’est jamais publiée. Les nombres par quartier sont exacts, mais masqués en dessous de {k}. Les chiffres plus fins (les points de la carte) sont des estimations auxquelles un bruit aléatoire est ajouté, pour qu’aucun foyer ne puisse être repéré (confidentialité différentielle) ; ils sont publiés {every}.',
    en: 'Your exact position is never published. Counts per district are exact, but hidden below {k}. Finer figures (the map’s dots) are estimates with random noise added, so that no household can be singled out (differential privacy); they are released {every}.',
  },
  errSummary: { fr: 'Le formulaire contient {n} erreur(s) :', en: 'The form has {n} error(s):' },
  errRequired: { fr: 'Ce champ est obligatoire.', en: 'This field is required.' },
  errRequiredCheck: { fr: 'Cochez cette case pour continuer.', en: 'Tick this box to continue.' },
  errNumber: { fr: 'Saisissez un nombre.', en: 'Enter a number.' },
  errInteger: { fr: 'Saisissez un nombre entier.', en: 'Enter a whole number.' },
  errMin: { fr: 'La valeur doit être au moins {n}.', en: 'The value must be at least {n}.' },
  errMax: { fr: 'La valeur doit être au plus {n}.', en: 'The value must be at most {n}.' },
  errMaxLength: { fr: '{n} caractères au maximum (actuellement {c}).', en: 'At most {n} characters (currently {c}).' },
  errChoice: { fr: 'Choisissez une des options proposées.', en: 'Choose one of the options.' },
  errLocation: { fr: 'Placez votre repère sur la carte, choisissez un quartier ou saisissez des coordonnées.', en: 'Place your pin on the map, choose a district or enter coordinates.' },
  errLon: { fr: 'Longitude invalide (entre -180 et 180).', en: 'Invalid longitude (between -180 and 180).' },
  errLat: { fr: 'Latitude invalide (entre -90 et 90).', en: 'Invalid latitude (between -90 and 90).' },
  errOutside: { fr: 'Cet emplacement est en dehors de la zone de la campagne.', en: 'This location is outside the campaign area.' },
  errServer: { fr: 'Le serveur a refusé la contribution : {d}', en: 'The server refused the contribution: {d}' },
  errUnavailable: { fr: 'Le service est momentanément indisponible. Votre contribution n’a pas été enregistrée ; réessayez dans {s} secondes.', en: 'The service is temporarily unavailable. Your contribution was not saved; try again in {s} seconds.' },
  errNetwork: { fr: 'Impossible de joindre le serveur. Vérifiez votre connexion puis réessayez.', en: 'Could not reach the server. Check your connection and try again.' },
  errGeneric: { fr: 'Une erreur est survenue ({s}). Réessayez.', en: 'Something went wrong ({s}). Please try again.' },
  errRateLimited: { fr: 'Trop de contributions depuis votre connexion ; veuillez réessayer dans {s} secondes.', en: 'Too many contributions from your connection; please try again in {s} seconds.' },
  errSpam: { fr: 'Un contrôle automatique a pris votre contribution pour du spam (un champ caché a été rempli, peut-être par le remplissage automatique du navigateur). Rechargez la page et réessayez.', en: 'An automatic check took your contribution for spam (a hidden field was filled in, perhaps by your browser’s autofill). Reload the page and try again.' },
  errTooFast: { fr: 'Le formulaire a été envoyé trop vite. Réessayez dans quelques secondes.', en: 'The form was sent too quickly. Try again in a few seconds.' },
  errProof: { fr: 'La vérification anti-spam automatique n’a pas abouti. Réessayez.', en: 'The automatic anti-spam check did not succeed. Please try again.' },
  sendingWait: { fr: 'Envoi en cours, quelques secondes…', en: 'Sending, a few seconds…' },
  sendingBusy: { fr: 'Le service est très sollicité, nouvel essai dans {s} s…', en: 'The service is busy, retrying in {s} s…' },
  honeypot: { fr: 'Laissez ce champ vide', en: 'Leave this empty' },
  charCount: { fr: '{c} / {n} caractères', en: '{c} / {n} characters' },
  yes: { fr: 'Oui', en: 'Yes' },
  thanks: { fr: 'Merci, votre contribution est enregistrée !', en: 'Thank you, your contribution has been saved!' },
  countedIn: { fr: 'Elle est comptée dans le quartier {d}, qui compte maintenant {c}.', en: 'It is counted in the district {d}, which now has {c}.' },
  countedNoDistrict: { fr: 'Elle est comptée, hors des quartiers de la campagne.', en: 'It has been counted, outside the campaign’s districts.' },
  pending: { fr: 'Elle sera comptée après validation par l’équipe de modération.', en: 'It will be counted after review by the moderation team.' },
  editLinkIntro: { fr: 'Gardez ce lien : il permet de corriger ou d’effacer votre contribution plus tard.', en: 'Keep this link: it lets you correct or erase your contribution later.' },
  editLink: { fr: 'Voir, corriger ou effacer ma contribution', en: 'See, correct or erase my contribution' },
  copyLink: { fr: 'Copier le lien', en: 'Copy the link' },
  copied: { fr: 'Lien copié.', en: 'Link copied.' },
  followTitle: { fr: 'Suivre mon quartier par e-mail', en: 'Follow my district by e-mail' },
  followIntro: {
    fr: 'Recevez un e-mail quand le quartier atteint 25, 50, 75 et 100 % de son objectif, et les nouvelles de la campagne. Un lien de confirmation vous sera d’abord envoyé. Votre adresse est gardée à part des contributions, et chaque message permet de se désabonner.',
    en: 'Get an e-mail when the district reaches 25, 50, 75 and 100% of its target, and the campaign’s news. A confirmation link is sent first. Your address is kept apart from contributions, and every message lets you unsubscribe.',
  },
  followEmail: { fr: 'Votre adresse e-mail', en: 'Your e-mail address' },
  followDistrict: { fr: 'Quartier', en: 'District' },
  followWhole: { fr: 'Toute la campagne (sans quartier)', en: 'The whole campaign (no district)' },
  followSubmit: { fr: 'Suivre', en: 'Follow' },
  followBadEmail: { fr: 'Saisissez une adresse e-mail, par exemple nom@exemple.fr.', en: 'Enter an e-mail address, for example name@example.org.' },
  followSent: {
    fr: 'C’est noté. Si cette adresse peut recevoir nos messages, un lien de confirmation vient d’y être envoyé : ouvrez-le pour recevoir les nouvelles.',
    en: 'Done. If this address can receive our messages, a confirmation link was just sent to it: open it to receive the news.',
  },
  followFailed: { fr: 'L’inscription n’a pas abouti : {e}', en: 'The subscription failed: {e}' },
  another: { fr: 'Ajouter une autre contribution', en: 'Add another contribution' },
  tableTitle: { fr: 'Nombre de contributions par quartier', en: 'Number of contributions by district' },
  tableCaption: { fr: 'Contributions par quartier (équivalent textuel de la carte)', en: 'Contributions by district (text equivalent of the map)' },
  tableDistrict: { fr: 'Quartier', en: 'District' },
  tableCount: { fr: 'Contributions', en: 'Contributions' },
  tableTotal: { fr: 'Total', en: 'Total' },
  hoverHint: { fr: 'Survolez un quartier', en: 'Hover over a district' },
  pinAnnounce: { fr: 'Repère : {d}, {c}.', en: 'Pin: {d}, {c}.' },
  cursorAnnounce: { fr: '{d} : {c}.', en: '{d}: {c}.' },
  pinConfirmed: { fr: 'Emplacement confirmé : {d}. Complétez maintenant le formulaire.', en: 'Location confirmed: {d}. Now fill in the form.' },
  yourPin: { fr: 'Votre repère', en: 'Your pin' },
  refreshed: { fr: 'Les nombres ont été mis à jour.', en: 'The counts have been updated.' },
  editTitle: { fr: 'Ma contribution', en: 'My contribution' },
  editIntro: { fr: 'Voici votre contribution à la campagne « {t} ». Vous pouvez corriger vos réponses et l’emplacement, puis enregistrer, ou l’effacer.', en: 'Here is your contribution to the campaign “{t}”. You can correct your answers and the location and save them, or erase it.' },
  editLoading: { fr: 'Chargement de votre contribution…', en: 'Loading your contribution…' },
  editSave: { fr: 'Enregistrer les corrections', en: 'Save the corrections' },
  editSaved: { fr: 'Vos corrections ont été enregistrées.', en: 'Your corrections have been saved.' },
  editRefused: { fr: 'Le serveur a refusé les corrections : {d}', en: 'The server refused the corrections: {d}' },
  editLocationHowMap: { fr: 'Déplacez le repère : faites-le glisser, cliquez sur la carte, ou donnez le focus à la carte et utilisez les flèches. Vous pouvez aussi saisir des coordonnées :', en: 'Move the pin: drag it, click the map, or focus the map and use the arrow keys. You can also enter coordinates:' },
  editLocationHowNoMap: { fr: 'Pour déplacer le repère, saisissez de nouvelles coordonnées :', en: 'To move the pin, enter new coordinates:' },
  editSentOn: { fr: 'Envoyée le {d}', en: 'Sent on {d}' },
  editUpdatedOn: { fr: 'modifiée le {d}', en: 'corrected on {d}' },
  editStatus: { fr: 'État : {s}', en: 'Status: {s}' },
  statusPublished: { fr: 'comptée sur la carte', en: 'counted on the map' },
  statusPending: { fr: 'en attente de modération', en: 'waiting for moderation' },
  statusHidden: { fr: 'masquée par la modération', en: 'hidden by the moderators' },
  editDistrict: { fr: 'Quartier : {d}', en: 'District: {d}' },
  editEraseTitle: { fr: 'Effacer ma contribution', en: 'Erase my contribution' },
  editEraseIntro: { fr: 'Vous pouvez aussi effacer définitivement votre contribution. Elle ne sera plus comptée.', en: 'You can also erase your contribution permanently. It will no longer be counted.' },
  editConfirm: { fr: 'Effacer définitivement', en: 'Erase permanently' },
  editDone: { fr: 'Votre contribution a été effacée.', en: 'Your contribution has been erased.' },
  editMissing: { fr: 'Ce lien est incomplet : il manque l’identifiant ou le jeton de la contribution. Le jeton est retiré de la barre d’adresse dès sa lecture : pour revenir ici, ouvrez à nouveau le lien reçu lors de l’envoi.', en: 'This link is incomplete: the contribution id or token is missing. The token is removed from the address bar as soon as it is read: to come back here, open the link you were given again.' },
  editNotFound: { fr: 'Cette contribution n’existe plus (déjà effacée ?) ou le lien n’est pas valide.', en: 'This contribution no longer exists (already erased?) or the link is not valid.' },
  backToMap: { fr: 'Retour à la carte', en: 'Back to the map' },
  poweredBy: { fr: 'Carte participative civicmap', en: 'civicmap participatory map' },
  moreThanMax: { fr: '{n} et plus', en: '{n} and more' },
  zoomIn: { fr: 'Zoom avant', en: 'Zoom in' },
  zoomOut: { fr: 'Zoom arrière', en: 'Zoom out' },
  resetBearing: { fr: 'Réinitialiser l’orientation', en: 'Reset bearing to north' },
  ctrlScroll: { fr: 'Utilisez Ctrl + molette pour zoomer', en: 'Use Ctrl + scroll to zoom the map' },
  cmdScroll: { fr: 'Utilisez ⌘ + molette pour zoomer', en: 'Use ⌘ + scroll to zoom the map' },
  twoFingers: { fr: 'Utilisez deux doigts pour déplacer la carte', en: 'Use two fingers to move the map' },
  toggleAttribution: { fr: 'Afficher/masquer les crédits', en: 'Toggle attribution' },
  rangeBoth: { fr: 'Nombre entre {min} et {max}.', en: 'A number between {min} and {max}.' },
  rangeMin: { fr: 'Nombre supérieur ou égal à {min}.', en: 'A number of at least {min}.' },
  rangeMax: { fr: 'Nombre inférieur ou égal à {max}.', en: 'A number of at most {max}.' },
  wholeNumber: { fr: 'Nombre entier.', en: 'Whole number.' },
  chooseOption: { fr: '— Choisir —', en: '— Choose —' },
  coords: { fr: 'Coordonnées : {lon} ; {lat}', en: 'Coordinates: {lon}, {lat}' },
  totalContribs: { fr: '{v} au total', en: '{v} in total' },
  tablePer1000: { fr: 'Pour 1 000 foyers', en: 'Per 1,000 households' },
  rateWithheld: { fr: 'masqué', en: 'hidden' },
  rateUnknown: { fr: 'n.d.', en: 'n/a' },
  rateOf: { fr: '{r} pour 1 000 foyers', en: '{r} per 1,000 households' },
  legendPer1000: { fr: 'Le tableau donne aussi les contributions pour 1 000 foyers de chaque quartier.', en: 'The table also gives the contributions per 1,000 households of each district.' },
  storyTitle: { fr: 'Les étapes de la campagne', en: 'The campaign’s story' },
  storyMilestone: { fr: 'Étape', en: 'Milestone' },
  storyUpdate: { fr: 'Actualité', en: 'Update' },
  storyUpcoming: { fr: 'à venir', en: 'upcoming' },
  storyLink: { fr: 'En savoir plus', en: 'Read more' },
  storyLinkAbout: { fr: ' : {t} (nouvelle fenêtre)', en: ': {t} (opens in a new window)' },
  storyFeed: { fr: 'Suivre ces étapes (flux Atom)', en: 'Follow this story (Atom feed)' },
  iframeTitle: { fr: 'Carte participative civicmap : {c}', en: 'civicmap participatory map: {c}' },
} as const;

export type MsgKey = keyof typeof S;
export const MESSAGES: Record<MsgKey, { fr: string; en: string }> = S;

/** Translated message with {placeholders} substituted. */
export function msg(lang: Lang, key: MsgKey, params: Record<string, string | number> = {}): string {
  return S[key][lang].replace(/\{(\w+)\}/g, (m, k) => (k in params ? String(params[k]) : m));
}

export function formatNumber(n: number, lang: Lang): string {
  return new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-GB').format(n);
}

/** "12 contributions", "1 contribution", "fewer than 5 contributions". French uses the singular for 0 and 1. */
export function formatContributions(count: number | null, withheld: boolean, k: number, lang: Lang): string {
  if (withheld || count == null) return msg(lang, 'contribFewer', { k });
  const one = lang === 'fr' ? count <= 1 : count === 1;
  return msg(lang, one ? 'contribOne' : 'contribMany', { n: formatNumber(count, lang) });
}

/** Bare count for tables: "12" or "fewer than 5". */
export function formatCount(count: number | null, withheld: boolean, k: number, lang: Lang): string {
  if (withheld || count == null) return msg(lang, 'fewerThan', { k });
  return formatNumber(count, lang);
}

/**
 * Contributions per 1,000 households, one decimal ("3,4" / "3.4"); "hidden" when the count is
 * withheld (the server sends no rate then), "n/a" without households on file.
 */
export function formatRate(rate: number | null | undefined, withheld: boolean, lang: Lang): string {
  if (withheld) return msg(lang, 'rateWithheld');
  if (rate == null || !isFinite(rate)) return msg(lang, 'rateUnknown');
  return new Intl.NumberFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(rate);
}

/** Whether any district of the layer has households on file (the table then shows rates). */
export function hasHouseholds(fc: { features: { properties: { households?: number | null } }[] } | null | undefined): boolean {
  return !!fc?.features?.some((f) => typeof f.properties.households === 'number');
}

export function formatDate(iso: string, lang: Lang): string {
  const d = new Date(iso);
  if (isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(lang === 'fr' ? 'fr-FR' : 'en-GB', { dateStyle: 'long' }).format(d);
}
