import { nav } from "/ui/static/common.js";

nav("overview");
