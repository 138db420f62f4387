// Prepares a page for the ipywidgets html-manager (jupyter-widgets/embed-amd.js, vendored by
// ci/vendor_js.sh), which _config.yml loads right after this file, after RequireJS.
(function () {
  "use strict";

  // 1. embed-amd.js finds its icon fonts from the URL RequireJS gives its named AMD modules, by
  //    default <page folder>/@jupyter-widgets/..., which does not exist. Point them at the copy.
  var vendored = document.currentScript.src.replace(/\/[^/]*$/, "") + "/jupyter-widgets";
  require.config({
    paths: {
      "@jupyter-widgets/base": vendored + "/base",
      "@jupyter-widgets/controls": vendored + "/controls",
      "@jupyter-widgets/html-manager": vendored + "/html-manager",
      "@jupyter-widgets/html-manager/dist": vendored,
    },
  });

  // 2. The widget controls typeset their labels with MathJax 2's API, MathJax.Hub.Queue, whenever
  //    window.MathJax exists (jupyter-widgets/ipywidgets#3829). The page loads MathJax 3, which has
  //    no Hub, so moving a slider threw "Cannot read properties of undefined (reading 'Queue')".
  //    Give MathJax 3 that one call, translated, the moment it installs itself as window.MathJax.
  var mathjax = window.MathJax;
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () {
      return mathjax;
    },
    set: function (value) {
      mathjax = value;
      if (value && value.version && !value.Hub) {
        value.Hub = {
          Queue: function (command) {
            var element = command[2]; // ["Typeset", MathJax.Hub, element]
            value.startup.promise.then(function () {
              return value.typesetPromise([element]);
            });
          },
        };
      }
    },
  });

  // 3. When a Stack switches children quickly (slider and toggle together), Lumino can deliver a
  //    message to a child view it already disposed; html-manager 1.0.6 then logs "Cannot read
  //    properties of null (reading 'processLuminoMessage')". Drop messages for disposed views.
  //    By DOMContentLoaded embed-amd.js, a classic script after this one, has defined the module.
  window.addEventListener("DOMContentLoaded", function () {
    require(["@jupyter-widgets/base"], function (base) {
      [base.JupyterLuminoWidget, base.JupyterLuminoPanelWidget].forEach(function (widgetClass) {
        var processMessage = widgetClass.prototype.processMessage;
        widgetClass.prototype.processMessage = function (message) {
          if (this._view) processMessage.call(this, message);
        };
      });
    });
  });
})();
